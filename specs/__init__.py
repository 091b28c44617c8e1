"""The spec zoo, installed as the package data of archgraph.specs (`archgraph zoo` lists it)."""
