//! Where encoded decision events go: stdout, a JSONL file rotated by size,
//! or an HTTP collector that takes gzip-compressed JSON arrays (OPA's
//! decision-log service protocol). A sink writes one batch at a time and
//! says whether it worked; retrying is the writer's job.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a batch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to stdout or the file failed.
    #[error("{what}: {source}")]
    Io {
        /// Which file or stream.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The collector could not be reached or refused the batch.
    #[error("decision log upload to {url}: {message}")]
    Http {
        /// The collector URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Encoded events in one buffer, each followed by a newline (an event
/// never contains one), so a batch is written with one call.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    count: usize,
}

impl Batch {
    /// Append one event that `encode` writes (without a newline).
    pub fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.bytes);
        self.bytes.push(b'\n');
        self.count += 1;
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empty the batch, keeping its buffer.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// The events as JSON lines.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A JSONL file that is rotated when it would grow beyond `max_bytes`:
/// `decisions.jsonl` → `decisions.jsonl.1` → ... → `decisions.jsonl.N`,
/// the oldest beyond `max_files` deleted.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    writer: Option<File>,
    size: u64,
}

impl FileSink {
    /// A sink appending to `path`.
    pub fn new(path: &Path, max_bytes: u64, max_files: usize) -> FileSink {
        FileSink {
            path: path.to_path_buf(),
            max_bytes,
            max_files,
            writer: None,
            size: 0,
        }
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            what: self.path.display().to_string(),
            source,
        }
    }

    fn open(&mut self) -> Result<&mut File, SinkError> {
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.io(e))?;
            self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.writer = Some(file);
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(|e| self.io(e))?;
        }
        if self.max_files == 0 {
            std::fs::remove_file(&self.path).map_err(|e| self.io(e))?;
        } else {
            let _ = std::fs::remove_file(self.rotated(self.max_files));
            for n in (1..self.max_files).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1)).map_err(|e| self.io(e))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1)).map_err(|e| self.io(e))?;
        }
        self.size = 0;
        Ok(())
    }

    /// Append the batch (one write) and flush; rotate first when it would
    /// take the file beyond `max_bytes`.
    pub fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let len = batch.as_bytes().len() as u64;
        self.open()?;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let writer = self.open()?;
        if let Err(err) = writer.write_all(batch.as_bytes()) {
            self.writer = None;
            return Err(self.io(err));
        }
        self.size += len;
        Ok(())
    }
}

/// An HTTP collector: each batch is one `POST` of a gzip-compressed JSON
/// array (`Content-Encoding: gzip`), with an optional bearer token.
#[derive(Debug)]
pub struct HttpSink {
    url: String,
    client: reqwest::Client,
    bearer_token_file: Option<PathBuf>,
}

impl HttpSink {
    /// A sink posting to `url`.
    pub fn new(
        url: &str,
        timeout: Duration,
        bearer_token_file: Option<PathBuf>,
    ) -> Result<HttpSink, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| SinkError::Http {
                url: url.to_string(),
                message: err.to_string(),
            })?;
        Ok(HttpSink {
            url: url.to_string(),
            client,
            bearer_token_file,
        })
    }

    fn fail(&self, message: impl ToString) -> SinkError {
        SinkError::Http {
            url: self.url.clone(),
            message: message.to_string(),
        }
    }

    /// The batch as a gzip-compressed JSON array.
    pub fn encode(batch: &Batch) -> std::io::Result<Vec<u8>> {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(b"[")?;
        for (i, line) in batch
            .as_bytes()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if i > 0 {
                gzip.write_all(b",")?;
            }
            gzip.write_all(line)?;
        }
        gzip.write_all(b"]")?;
        gzip.finish()
    }

    /// Upload one batch; any status but 2xx is a failure.
    pub async fn write(&self, batch: &Batch) -> Result<(), SinkError> {
        let body = HttpSink::encode(batch).map_err(|e| self.fail(e))?;
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(file) = &self.bearer_token_file {
            let token = std::fs::read_to_string(file)
                .map_err(|e| self.fail(format!("bearer token {}: {e}", file.display())))?;
            request = request.bearer_auth(token.trim());
        }
        let response = request.send().await.map_err(|e| self.fail(e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.fail(format!("collector answered {}", response.status())))
        }
    }
}

/// The configured sink.
#[derive(Debug)]
pub enum Sink {
    /// One JSON line per event on stdout.
    Stdout,
    /// JSON lines in a size-rotated file.
    File(FileSink),
    /// Batches posted to a collector.
    Http(HttpSink),
}

impl Sink {
    /// The sink's name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Stdout => "stdout",
            Sink::File(_) => "file",
            Sink::Http(_) => "http",
        }
    }

    /// Whether events should be gathered into batches before writing
    /// (uploads), or written as soon as they arrive (stdout, file).
    pub fn batches(&self) -> bool {
        matches!(self, Sink::Http(_))
    }

    /// Write one batch. Runs on the writer thread; `runtime` drives uploads.
    pub fn write(
        &mut self,
        batch: &Batch,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(), SinkError> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                let written = out.write_all(batch.as_bytes()).and_then(|()| out.flush());
                written.map_err(|source| SinkError::Io {
                    what: "stdout".into(),
                    source,
                })
            }
            Sink::File(file) => file.write(batch),
            Sink::Http(http) => runtime.block_on(http.write(batch)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn file_sink_rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/decisions.jsonl");
        let mut sink = FileSink::new(&path, 100, 2);
        // 40 bytes per event with its newline; 2 per batch, 2 per file.
        let mut batch = Batch::default();
        for _ in 0..2 {
            batch.push_with(|out| out.extend_from_slice(&[b'x'; 39]));
        }
        for _ in 0..4 {
            sink.write(&batch).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert_eq!(size(&path), 80);
        assert_eq!(size(&sink.rotated(1)), 80);
        assert_eq!(size(&sink.rotated(2)), 80);
        assert!(
            !sink.rotated(3).exists(),
            "only max_files rotated files are kept"
        );
    }

    #[test]
    fn uploads_are_a_gzipped_json_array() {
        let mut batch = Batch::default();
        batch.push_with(|out| out.extend_from_slice(b"{\"a\":1}"));
        batch.push_with(|out| out.extend_from_slice(b"{\"b\":2}"));
        let body = HttpSink::encode(&batch).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "[{\"a\":1},{\"b\":2}]");
    }
}
