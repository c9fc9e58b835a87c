"""Ray runtime: start or connect to a cluster, collector actors, (later) rollout actors and job submission."""
