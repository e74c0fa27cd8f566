"""Built-in plugins. Each kind's package registers its plugins by ``"module:attr"`` reference, so that listing
them (``mfm-bench plugins``) imports no torch; the implementation modules load on first use."""
