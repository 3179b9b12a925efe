//! EXPERIMENT, to be deleted: `object_store`'s S3 client as a [`BlobStore`], to measure
//! its CPU per PUT against [`S3Store`] on `switchyard-bench ingress`. Built only with the
//! `object-store-experiment` feature and chosen at run time by `SWY_S3_CLIENT=object_store`.
//! Object calls go through object_store; bucket calls and listings through [`S3Store`]
//! (they are off the measured path).

use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig};
use switchyard_core::config::S3Config;

use crate::blob::{BlobStore, BoxFuture, ObjectInfo};
use crate::error::ClaimCheckError;
use crate::s3::S3Store;
use crate::segment::SEGMENT_CONTENT_TYPE;

#[derive(Debug)]
pub struct ObjectStoreS3 {
    inner: AmazonS3,
    bucket_calls: S3Store,
}

impl ObjectStoreS3 {
    pub async fn new(cfg: &S3Config) -> Result<Self, ClaimCheckError> {
        let mut retry = RetryConfig::default();
        retry.max_retries = 1;
        let mut b = AmazonS3Builder::new()
            .with_region(&cfg.region)
            .with_bucket_name(&cfg.bucket)
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_allow_http(true)
            .with_unsigned_payload(true)
            .with_retry(retry)
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(true)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_pool_idle_timeout(Duration::from_secs(30)),
            );
        if !cfg.endpoint.is_empty() {
            b = b.with_endpoint(&cfg.endpoint);
        }
        if !cfg.access_key_id.is_empty() {
            b = b
                .with_access_key_id(&cfg.access_key_id)
                .with_secret_access_key(cfg.secret_access_key.expose());
        }
        let inner = b.build().map_err(|e| ClaimCheckError::Config(e.to_string()))?;
        Ok(Self {
            inner,
            bucket_calls: S3Store::new(cfg).await?,
        })
    }
}

fn error(key: &str, e: object_store::Error) -> ClaimCheckError {
    match e {
        object_store::Error::NotFound { .. } => ClaimCheckError::NotFound(key.to_string()),
        other => ClaimCheckError::Unavailable(other.to_string()),
    }
}

impl BlobStore for ObjectStoreS3 {
    fn bucket(&self) -> &str {
        self.bucket_calls.bucket()
    }

    fn ensure_bucket(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        self.bucket_calls.ensure_bucket()
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ClaimCheckError>> {
        self.bucket_calls.probe()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        metadata: &'a [(&'static str, String)],
    ) -> BoxFuture<'a, Result<(), ClaimCheckError>> {
        Box::pin(async move {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, SEGMENT_CONTENT_TYPE.into());
            for (name, value) in metadata {
                attributes.insert(Attribute::Metadata((*name).into()), value.clone().into());
            }
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.inner
                .put_opts(&Path::from(key), PutPayload::from(body), opts)
                .await
                .map(|_| ())
                .map_err(|e| error(key, e))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(async move {
            let r = self.inner.get(&Path::from(key)).await.map_err(|e| error(key, e))?;
            r.bytes().await.map_err(|e| error(key, e))
        })
    }

    fn get_range<'a>(&'a self, key: &'a str, first: u64, last: u64) -> BoxFuture<'a, Result<Bytes, ClaimCheckError>> {
        Box::pin(async move {
            self.inner
                .get_range(&Path::from(key), first..last.saturating_add(1))
                .await
                .map_err(|e| error(key, e))
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ObjectInfo, ClaimCheckError>> {
        self.bucket_calls.head(key)
    }

    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> BoxFuture<'a, Result<Vec<String>, ClaimCheckError>> {
        self.bucket_calls.list(prefix, limit)
    }
}
