"""Permit hub: the inter-departmental data-sharing hub for China's residence-permit system."""
