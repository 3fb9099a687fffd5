"""``fieldscan library`` — owned by the matcher work; filled in there."""
