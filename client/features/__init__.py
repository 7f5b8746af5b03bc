"""The feature store (design §10): feature sets applied from the hub, an offline store for
point-in-time training data and an online store for serving."""
