"""``fieldscan scan`` — being written; registers its commands on import."""
