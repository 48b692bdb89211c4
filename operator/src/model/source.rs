//! Where a served model's weights come from, parsed from `serve.uri`: a Hugging Face repository,
//! an HTTPS file, an existing PersistentVolumeClaim or an OCI image. Pure.

use std::fmt;

/// Mount path of the weights in every serving and download container.
pub const MODELS_DIR: &str = "/models";

/// A parsed `serve.uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `hf://org/name[/file][@revision]`: downloaded once into the cache volume.
    HuggingFace {
        /// `org/name`.
        repo: String,
        /// One file of the repository (a GGUF quantization), or the whole repository.
        file: Option<String>,
        /// Branch, tag or commit; `main` when unset.
        revision: String,
    },
    /// `https://host/path/file`: one file downloaded once into the cache volume.
    Https {
        /// The URL.
        url: String,
        /// Its last path segment.
        file: String,
    },
    /// `pvc://claim[/path]`: an existing claim, mounted read-only; nothing is downloaded.
    Pvc {
        /// The claim's name.
        claim: String,
        /// Path of the weights inside the claim.
        path: Option<String>,
    },
    /// `oci://image`: an OCI image or artifact mounted as an image volume; nothing is downloaded.
    Oci {
        /// The image reference.
        image: String,
    },
}

/// Why a `serve.uri` does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("serve.uri {uri:?}: {why}")]
pub struct SourceError {
    /// The URI.
    pub uri: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Source {
    /// Parses a `serve.uri`.
    pub fn parse(uri: &str) -> Result<Self, SourceError> {
        let error = |why| SourceError { uri: uri.to_owned(), why };
        if let Some(rest) = uri.strip_prefix("hf://") {
            let (path, revision) = rest.split_once('@').unwrap_or((rest, "main"));
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty() || *p == "..") {
                return Err(error("expected hf://org/name[/file][@revision]"));
            }
            if revision.is_empty() || !revision.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)) {
                return Err(error("the revision may hold letters, digits, '.', '_', '-' and '/'"));
            }
            return Ok(Self::HuggingFace {
                repo: parts[..2].join("/"),
                file: (parts.len() > 2).then(|| parts[2..].join("/")),
                revision: revision.to_owned(),
            });
        }
        if let Some(rest) = uri.strip_prefix("https://") {
            let path = rest.split(['?', '#']).next().unwrap_or_default();
            let file = path.rsplit('/').next().unwrap_or_default();
            if !path.contains('/') || file.is_empty() || file.starts_with('.') {
                return Err(error("expected https://host/path/file with a file name"));
            }
            return Ok(Self::Https { url: uri.to_owned(), file: file.to_owned() });
        }
        if let Some(rest) = uri.strip_prefix("pvc://") {
            let (claim, path) = rest.split_once('/').map_or((rest, None), |(c, p)| (c, Some(p)));
            if !is_dns_label(claim) {
                return Err(error("expected pvc://claim[/path] with a claim name that is a DNS label"));
            }
            let path = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
            if path.is_some_and(|p| p.split('/').any(|s| s == "..")) {
                return Err(error("the path may not leave the claim"));
            }
            return Ok(Self::Pvc { claim: claim.to_owned(), path: path.map(str::to_owned) });
        }
        if let Some(image) = uri.strip_prefix("oci://") {
            if image.is_empty() || image.contains(char::is_whitespace) {
                return Err(error("expected oci://registry/repository:tag or @digest"));
            }
            return Ok(Self::Oci { image: image.to_owned() });
        }
        Err(error("must start with hf://, https://, pvc:// or oci://"))
    }

    /// Whether a download Job fills a cache volume for this source.
    pub fn needs_download(&self) -> bool {
        matches!(self, Self::HuggingFace { .. } | Self::Https { .. })
    }

    /// Directory (inside the mounted volume) the weights are downloaded to: one per source, so a
    /// changed `uri` downloads afresh instead of mixing files.
    pub fn cache_dir(&self) -> String {
        match self {
            Self::HuggingFace { repo, revision, .. } => format!("{MODELS_DIR}/hf/{repo}/{}", sanitize(revision)),
            Self::Https { url, .. } => format!("{MODELS_DIR}/https/{}", short_hash(url)),
            Self::Pvc { path, .. } => {
                path.as_ref().map_or_else(|| MODELS_DIR.to_owned(), |p| format!("{MODELS_DIR}/{p}"))
            }
            Self::Oci { .. } => MODELS_DIR.to_owned(),
        }
    }

    /// What the engine is pointed at: the file for single-file sources, else the directory.
    pub fn model_path(&self) -> String {
        match self {
            Self::HuggingFace { file: Some(file), .. } | Self::Https { file, .. } => {
                format!("{}/{file}", self.cache_dir())
            }
            _ => self.cache_dir(),
        }
    }

    /// A short, stable hash of the source, part of the download Job's name (a Job's template is
    /// immutable, so another source gets another Job).
    pub fn digest(&self) -> String {
        short_hash(&self.to_string())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HuggingFace { repo, file, revision } => {
                write!(f, "hf://{repo}")?;
                if let Some(file) = file {
                    write!(f, "/{file}")?;
                }
                write!(f, "@{revision}")
            }
            Self::Https { url, .. } => f.write_str(url),
            Self::Pvc { claim, path } => write!(f, "pvc://{claim}/{}", path.as_deref().unwrap_or_default()),
            Self::Oci { image } => write!(f, "oci://{image}"),
        }
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// First 8 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().take(4).fold(String::with_capacity(8), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugging_face_uris_name_a_repository_an_optional_file_and_a_revision() {
        assert_eq!(
            Source::parse("hf://meta-llama/Llama-3.1-8B-Instruct").unwrap(),
            Source::HuggingFace {
                repo: "meta-llama/Llama-3.1-8B-Instruct".into(),
                file: None,
                revision: "main".into()
            }
        );
        let gguf = Source::parse("hf://ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q8_0.gguf@v1.0").unwrap();
        assert_eq!(gguf.model_path(), "/models/hf/ggml-org/gemma-3-270m-GGUF/v1.0/gemma-3-270m-Q8_0.gguf");
        for bad in ["hf://only-org", "hf://org//x", "hf://org/name@", "hf://org/../x", "hf://org/name@a b"] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pvc_oci_and_https_sources_are_mounted_or_downloaded_as_they_are() {
        let pvc = Source::parse("pvc://shared-models/llama/8b").unwrap();
        assert!(!pvc.needs_download());
        assert_eq!(pvc.model_path(), "/models/llama/8b");
        assert!(Source::parse("pvc://Bad_Name/x").is_err());
        assert!(Source::parse("pvc://claim/../etc").is_err());
        let oci = Source::parse("oci://ghcr.io/acme/models/llama:8b").unwrap();
        assert_eq!((oci.needs_download(), oci.model_path()), (false, "/models".to_owned()));
        let https = Source::parse("https://example.com/files/model.gguf?download=1").unwrap();
        assert!(https.needs_download());
        assert!(https.model_path().ends_with("/model.gguf"), "{}", https.model_path());
        assert!(Source::parse("https://example.com/").is_err());
        assert!(Source::parse("s3://bucket/model").is_err());
    }

    #[test]
    fn another_source_gets_another_digest_and_directory() {
        let a = Source::parse("hf://org/name@main").unwrap();
        let b = Source::parse("hf://org/name@v2").unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.cache_dir(), b.cache_dir());
        assert_eq!(a.digest(), Source::parse("hf://org/name").unwrap().digest());
    }
}
