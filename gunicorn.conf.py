"""gunicorn settings for Renewdesk. Every worker is stateless: sessions are signed cookies,
lockout counters live in the database, so any number of workers and instances can serve."""
import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
timeout = 120  # large exports and imports stream for a while
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers now and then
max_requests_jitter = 200
control_socket_disable = True  # gunicorn 27: one shared ~/.gunicorn socket per user otherwise
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
