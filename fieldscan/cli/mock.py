"""``fieldscan mock`` — being written; registers its commands on import."""
