"""Thin I/O adapters: each wraps an injected boto3 client (or HTTP) in domain-named methods."""
