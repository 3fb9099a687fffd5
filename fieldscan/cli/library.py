"""``fieldscan library`` — being written; registers its commands on import."""
