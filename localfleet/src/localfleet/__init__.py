"""Local fleet: real Kubernetes control planes built from source, run as plain processes.

Test and development tooling for meshfleet.istio; not part of the built collection.
"""
