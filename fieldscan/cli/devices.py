"""``fieldscan devices`` — being written; registers its commands on import."""
