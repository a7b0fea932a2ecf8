//! The real Debian nginx serving a tiles directory as a static site, with the spec's
//! content types and cache headers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The nginx binary; fails loudly if it is missing (CI installs it, deploy/lib.sh).
pub fn require() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx not found: apt-get install -y nginx (deploy/lib.sh ensure_test_deps does this)");
}

pub struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(bin: &Path, root: &Path) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::common::free_port();
        let d = dir.path().display();
        // One process, no master: it runs as the test's user, so it can read the
        // test's private temporary directories.
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    gzip on;
    gzip_types application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /checkpoint {{
            default_type "text/plain; charset=utf-8";
            add_header Cache-Control "no-cache, max-age=2";
        }}
        location /tile/ {{
            default_type application/octet-stream;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"#,
            root = root.display()
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .spawn()
            .expect("start nginx");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
