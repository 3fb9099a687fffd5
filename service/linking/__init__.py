"""Post-seizure linking: correlation of seizures through shared, indexed attribute keys.

:mod:`.engine` correlates one seizure (keys, candidates, reasons, links, alerts);
:mod:`.spectral` fingerprints raw spectra; :mod:`.worker` queues correlations durably and
runs them after the commit; :mod:`.crud` is what the API and the web UI read and decide
through (links and alerts an agency may see).

Importing the package registers its tables on ``SQLModel.metadata`` (Alembic's
``env.py`` and the models/migrations agreement test collect them from there).
"""

from service.linking import models as models  # the tables, on the metadata
