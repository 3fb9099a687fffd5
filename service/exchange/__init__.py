"""Exchange of shareable records between agencies on different instances (issue 8).

* :mod:`service.exchange.package` -- the signed (optionally encrypted) package format, pure.
* :mod:`service.exchange.reasons` -- the stable codes of refusals and record outcomes.
* :mod:`service.exchange.keys` -- each local agency's signing and encryption keys, in files.
* :mod:`service.exchange.records` -- rows ↔ exchanged JSON records, lossless and validated.
* :mod:`service.exchange.partners` -- registered partner agencies, provenance listings.
* :mod:`service.exchange.exporter`, :mod:`service.exchange.importer` -- the two directions.

Importing the package registers its tables on ``SQLModel.metadata``.
"""

from service.exchange import models as models  # the tables, on the metadata
