"""The two-stage ranker: candidates from every retriever, features, a LightGBM LambdaRank."""
