# splitdns on every Nomad client node: a system job on the host network.
#
# Needs, on each client: the binary at /usr/local/bin/splitdns, a `splitdns`
# system user, and the raw_exec driver enabled (plugin "raw_exec" { config {
# enabled = true } } in the client config). raw_exec starts tasks as the
# client's user, normally root: splitdns reads its config, then switches to
# [server] user keeping only CAP_NET_BIND_SERVICE, then binds port 53.
#
# Rolling out a config change: edit the template below (or the Consul KV key,
# see the comment in it) and `nomad job run` this file. Nomad re-renders the
# file on every node and sends SIGHUP (change_mode = "signal"): each splitdns
# reloads in place, keeps its cache and its listeners, and never stops
# answering. A config `splitdns check` would refuse is refused by every node,
# which keeps serving the previous one and logs why. Changes to the job
# itself (a new binary, resources) restart the tasks, one node at a time.

job "splitdns" {
  type        = "system"
  datacenters = ["*"]
  priority    = 90

  update {
    max_parallel = 1
    stagger      = "30s"
  }

  group "splitdns" {
    network {
      mode = "host"
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "2s"
      mode     = "delay"
    }

    task "splitdns" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/splitdns"
        args    = ["run", "--config", "${NOMAD_TASK_DIR}/splitdns.toml"]
      }

      # SIGTERM: stop taking queries, give those in flight up to 5 seconds.
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      env {
        NO_COLOR = "1"
      }

      # The config. To manage it in Consul KV for the whole fleet instead,
      # replace the text between the EOT lines with:
      #   {{ key "splitdns/config" }}
      # and store the TOML there: `consul kv put splitdns/config @splitdns.toml`.
      template {
        destination   = "local/splitdns.toml"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        perms         = "0644"
        data          = <<-EOT
          rules = ["rev-server=10.0.0.0/8,127.0.0.1#8600"]

          [server]
          listen = ["127.0.0.1:53", "docker0:53"]
          allow = ["127.0.0.0/8", "::1", "172.16.0.0/12"]
          user = "splitdns"

          [upstream]
          # The node's real resolvers, as systemd-resolved lists them (not its
          # stub). Elsewhere: a file that names them, or servers = [...].
          # The file is watched for changes.
          resolv_conf = "/run/systemd/resolve/resolv.conf"

          # The local agent; min_ttl caches its TTL 0 answers for 5 seconds.
          [[route]]
          zones = ["consul"]
          servers = ["127.0.0.1:8600"]
          min_ttl = 5
        EOT
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
