"""The API of the operator: protobuf storage messages and pydantic models.

``v1`` holds the protobuf modules generated from ``proto/`` (the storage
contract); ``kinds`` names the two custom resources in one place.
"""
