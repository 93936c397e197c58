"""Demo data: a children's-fashion brand with 16 stores in China (``vitrine seed``)."""
