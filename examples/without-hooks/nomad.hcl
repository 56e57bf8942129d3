# Nomad: on stop or update, Nomad sends kill_signal, waits kill_timeout, then kills the task.
# kill_timeout must outlast --drain-timeout + --stop-timeout (45 s + 10 s); it is capped by the client's
# max_kill_timeout (30 s by default), so raise that too.
job "envoy" {
  group "envoy" {
    network {
      port "http" { static = 8080 }
      port "shutdown" { to = 8090 }
    }

    task "envoy" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "60s"

      config {
        image      = "envoy-with-shutdown-manager:0.1.0"
        ports      = ["http", "shutdown"]
        entrypoint = ["/usr/local/bin/envoy-shutdown-manager"]
        args = [
          "run",
          "--admin-address=127.0.0.1:9001",
          "--check-delay=5s",
          "--check-interval=1s",
          "--drain-timeout=45s",
          "--stop-timeout=10s",
          "--",
          "envoy",
          "-c",
          "/etc/envoy/envoy.yaml",
        ]
      }
    }
  }
}
