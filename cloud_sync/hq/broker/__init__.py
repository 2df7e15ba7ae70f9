"""HQ's MQTT broker: the one configured, else Mosquitto when installed, else amqtt embedded.

    from cloud_sync.hq.broker.choice import start_broker
    start_broker(directory=..., url=None, port=0, users=None, password_file=None,
                 embedded=False) -> RunningBroker
    RunningBroker (running_broker.py): .url .kind .supports_shared_subscriptions .ca_cert
                                        add_user(name, password) stop()

Modules, one concept each: ``choice`` (which broker), ``running_broker`` (the seam,
``ExternalBroker``), ``embedded`` (amqtt on a thread), ``amqtt_plugins`` (its authentication
and ACL), ``mosquitto`` (the child process), ``mosquitto_config`` (the shipped config made
local), ``acl`` (Mosquitto's ACL file, parsed and evaluated), ``password_file`` (Mosquitto's
hashes), ``tls_files`` (a pilot's CA and server certificate), ``shipped_files``, ``command``
(``storeside-hq broker``), ``errors``.

Nothing is imported here, so HQ's CLI does not load amqtt for commands that need no broker.
"""
