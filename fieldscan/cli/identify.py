"""``fieldscan identify`` — being written; registers its commands on import."""
