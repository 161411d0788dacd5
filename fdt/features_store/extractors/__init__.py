"""Built-in extractors. Each module imports torch; the registry imports them on demand."""
