"""``fieldscan serve`` — being written; registers its commands on import."""
