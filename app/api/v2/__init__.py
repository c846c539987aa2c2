"""The Open Inference Protocol (KServe v2) with Triton's binary tensor extension: every loss is a
model. :mod:`.types` holds the protocol's documents, :mod:`.codec` turns bytes into arrays and
back, :mod:`.model` adapts the losses to the protocol, :mod:`.routes` is the HTTP side. Only the
routes import the web framework."""
