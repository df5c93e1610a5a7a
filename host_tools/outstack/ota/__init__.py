"""OTA on the host: keys, packing and signing, and the push transfer."""
