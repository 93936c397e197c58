"""HTTP routes of the live package. Handlers validate, call a service and map errors."""
