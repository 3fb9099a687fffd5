"""``fieldscan admin`` — being written; registers its commands on import."""
