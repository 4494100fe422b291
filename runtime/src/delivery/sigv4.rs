//! AWS Signature Version 4 for the `s3` and `cloudtrail` audit sinks, by AWS's own signer
//! (`aws-sigv4`). The credentials come from the environment variables the sink's
//! configuration names, read at the moment of signing; none reaches a row or a message.

use super::SendError;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use pbc_compiler::config::AwsCredentialsEnv;
use std::time::SystemTime;

/// What is signed: S3 takes its paths encoded once and unnormalized, and the payload's
/// SHA-256 in `x-amz-content-sha256`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    S3,
    CloudTrailData,
}

/// The headers to add to the request (`authorization`, `x-amz-date`, …).
pub(super) fn headers(
    creds: &AwsCredentialsEnv,
    region: &str,
    service: Service,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Vec<(String, String)>, SendError> {
    let key = super::secret(&creds.access_key_id_env, "the access key id")?;
    let secret = super::secret(&creds.secret_access_key_env, "the secret access key")?;
    let token = std::env::var(&creds.session_token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let identity =
        aws_credential_types::Credentials::new(key, secret, token, None, "pbc-config").into();
    let mut settings = SigningSettings::default();
    let name = match service {
        Service::S3 => {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            "s3"
        }
        Service::CloudTrailData => "cloudtrail-data",
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(name)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| SendError::permanent(format!("signing: {e}")))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SendError::permanent(format!("signing: {e}")))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| SendError::permanent(format!("signing: {e}")))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
