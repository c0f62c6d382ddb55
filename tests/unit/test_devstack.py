"""`make dev` (hack/devstack) without starting it: ports, the gunicorn command line."""

import socket

import pytest

import devstack.__main__ as devstack


def test_a_taken_port_is_named_with_its_service_and_how_to_move():
    """The broker's port (second of five) is held here; the four others are free (a
    busy machine may hold a neighbour: another port is picked then)."""
    for _ in range(50):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = holder.getsockname()[1]
            base = taken - 1
            neighbours = [port for port in range(base, base + 5) if port != taken]
            if not all(map(devstack.port_is_free, neighbours)):
                continue
            with pytest.raises(devstack.PortTaken) as raised:
                devstack.choose_ports(base)
            break
    else:
        pytest.fail("no five neighbouring free ports on 127.0.0.1")
    message = str(raised.value)
    assert f"port {taken} (broker)" in message
    assert "DEV_PORT_BASE=" in message and "--port-base" in message


def test_main_stops_before_starting_anything_when_a_port_is_taken(tmp_path, caplog):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        base = holder.getsockname()[1]
        code = devstack.main(["--state-dir", str(tmp_path / "dev"), "--port-base", str(base)])
    assert code == 1
    assert f"port {base} (gateway)" in caplog.text
    assert not (tmp_path / "dev").exists()  # no control plane was started


def test_free_ports_from_a_base_are_consecutive():
    assert list(devstack.choose_ports(0)) == list(devstack.SERVICES)


def test_services_run_with_the_gunicorn_settings_of_knative():
    argv = devstack.gunicorn_argv("storeplatform.gateway:create_app()", 8080, 2)
    assert argv[argv.index("--config") + 1] == "python:storeplatform.gunicorn_conf"
    assert argv[argv.index("--workers") + 1] == "2"
    assert set(devstack.WORKERS) == set(devstack.KNATIVE_SERVICES)
