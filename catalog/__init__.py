"""Products, stock, carts, orders and payments."""
