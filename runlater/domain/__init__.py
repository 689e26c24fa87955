"""The rules of Runlater's resources, for every front door (REST, batch, sync; later the
dashboard and the QStash API): what a request means, its defaults, the schedule it implies and
the URLs it may call. No HTTP here and no SQL: the schemas check shapes, the store writes, the
web layer maps ``runlater.errors`` to HTTP answers."""
