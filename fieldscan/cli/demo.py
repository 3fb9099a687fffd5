"""``fieldscan demo`` — being written; registers its commands on import."""
