"""``fieldscan identify`` — owned by the matcher work; filled in there."""
