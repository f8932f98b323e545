"""One comparison engine for release comparison (``evalsuite compare``) and the pytest baselines:
one threshold model and paired statistics on scipy.stats.
"""
