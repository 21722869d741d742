"""JSON Schemas published with vmctl (the spec language, the plan document)."""
