"""What every door shares of HTTP, below the doors: reading a request body, and the error pipeline that turns any
exception into the domain error a door renders, with the headers that travel with it (docs/architecture.md,
"Errors")."""
