"""The `lsdb` command: one Typer module per noun, each a thin client of `lsdb.service`."""
