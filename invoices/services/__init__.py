"""Every state change of invoices lives here, one module per operation family."""
