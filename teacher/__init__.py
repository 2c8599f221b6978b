"""Producing traces: teacher backends, the trace format, sampling N per problem."""
