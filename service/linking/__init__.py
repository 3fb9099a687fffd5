"""Post-seizure linking: correlation of seizures through shared, indexed attribute keys.

Importing the package registers its tables on ``SQLModel.metadata`` (Alembic's
``env.py`` and the models/migrations agreement test collect them from there).
"""

from service.linking import models as models  # the tables, on the metadata
