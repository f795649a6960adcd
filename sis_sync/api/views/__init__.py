"""The API's views: each validates its input, calls one domain function, serialises the result."""
