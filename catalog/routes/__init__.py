"""HTTP routes of the catalog: products and stock, the shop (profile, cart, orders), deals."""
