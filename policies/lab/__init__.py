"""The policy lab: sweeps over policy variants on Dask, and a recommender."""
