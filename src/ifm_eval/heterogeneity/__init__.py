"""Effect heterogeneity: subgroup event studies by a moderator (integration-plan use,
organisation, size class, target-group breadth, ...) and the differences between subgroups.

- :mod:`.moderators`: the moderators a spec can name (``heterogeneity: <moderator>``), their
  groups, and every municipality's group (a missing answer is its own group).
- :mod:`.subgroups`: one fit of the spec's estimator per subgroup, the differences between
  subgroups with cluster-jackknife SEs and a cluster multiplier-bootstrap p-value.
- :mod:`.stage`: the ``heterogeneity`` job of one spec and the ``heterogeneity_summary``
  job (table with the planted truth on stand-in data, side-by-side figures).
"""
