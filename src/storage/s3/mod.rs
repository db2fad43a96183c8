//! S3 and S3-compatible stores: AWS SigV4 query presigning.
