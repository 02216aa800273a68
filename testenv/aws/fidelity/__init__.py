"""The AWS fidelity layer: a WSGI middleware around moto's server app that adds
what moto leaves out (IAM and KMS authorization, STS token checks, AWS error
shapes, faults, rate ceilings and call counters). See ../README.md."""
