package io.xpuflow.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.math.BigInteger;
import java.net.ConnectException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

/**
 * A local run listens on loopback only: the server sockets a running local job opens in this JVM, read
 * from the kernel's socket table rather than from Flink's settings, are all bound to a loopback address,
 * and a connection to each of their ports on this machine's network address is refused.
 */
@EnabledOnOs(OS.LINUX) // the socket table is read from /proc
class LocalFlinkTest {

    @Test
    void aLocalJobListensOnLoopbackOnly() throws Exception {
        Set<Long> before = listeningSockets().keySet();
        StreamExecutionEnvironment env = LocalFlink.environment(1, new Configuration());
        env.fromSequence(1, Long.MAX_VALUE).map(new Slow()).sinkTo(new DiscardingSink<>());
        JobClient job = env.executeAsync("loopback");
        try {
            while (job.getJobStatus().get() != JobStatus.RUNNING) {
                Thread.sleep(50);
            }
            Map<Long, InetSocketAddress> opened = new HashMap<>(listeningSockets());
            opened.keySet().removeAll(before);
            // at least the REST API and the BLOB server
            assertThat(opened).as("server sockets of the local cluster").hasSizeGreaterThanOrEqualTo(2);
            assertThat(opened.values()).allSatisfy(a -> assertThat(a.getAddress().isLoopbackAddress())
                    .as("%s bound to loopback", a).isTrue());
            List<InetAddress> external = networkAddresses();
            for (InetAddress address : external) {
                for (InetSocketAddress bound : opened.values()) {
                    assertThatThrownBy(() -> {
                        try (Socket s = new Socket()) {
                            s.connect(new InetSocketAddress(address, bound.getPort()), 2000);
                        }
                    }).as("port %d on %s", bound.getPort(), address).isInstanceOf(ConnectException.class);
                }
            }
        } finally {
            job.cancel().get();
        }
    }

    /** Slows the endless source down, so the job idles while the test looks at its sockets. */
    private static final class Slow implements MapFunction<Long, Long> {
        @Override
        public Long map(Long v) throws InterruptedException {
            Thread.sleep(10);
            return v;
        }
    }

    /** This machine's addresses other than loopback (an empty list on a host with no network). */
    private static List<InetAddress> networkAddresses() throws IOException {
        List<InetAddress> out = new ArrayList<>();
        for (NetworkInterface nic : NetworkInterface.networkInterfaces().toList()) {
            if (nic.isUp() && !nic.isLoopback()) {
                nic.inetAddresses().filter(a -> a instanceof Inet4Address && !a.isLinkLocalAddress()).forEach(out::add);
            }
        }
        return out;
    }

    /**
     * The TCP sockets in state LISTEN that belong to this process, by inode, with their bound address:
     * {@code /proc/net/tcp} and {@code tcp6} list the sockets of the network namespace, {@code /proc/self/fd}
     * links to this process's own.
     */
    static Map<Long, InetSocketAddress> listeningSockets() throws IOException {
        Set<Long> own = new HashSet<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith("socket:[")) {
                        own.add(Long.parseLong(target.substring(8, target.length() - 1)));
                    }
                } catch (IOException closedMeanwhile) {
                    // the descriptor was closed while listing
                }
            }
        }
        Map<Long, InetSocketAddress> out = new HashMap<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            Path p = Path.of(table);
            if (!Files.exists(p)) {
                continue;
            }
            List<String> lines = Files.readAllLines(p);
            for (String line : lines.subList(1, lines.size())) { // after the header
                String[] f = line.trim().split("\\s+");
                long inode = Long.parseLong(f[9]);
                if (f[3].equals("0A") && own.contains(inode)) { // 0A: TCP_LISTEN
                    out.put(inode, address(f[1]));
                }
            }
        }
        return out;
    }

    /** {@code 0100007F:1F90} (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word in host byte order. */
    private static InetSocketAddress address(String hex) throws IOException {
        String[] parts = hex.split(":");
        byte[] raw = new BigInteger("1" + parts[0], 16).toByteArray(); // the leading 1 keeps leading zero bytes
        byte[] bytes = new byte[parts[0].length() / 2];
        System.arraycopy(raw, raw.length - bytes.length, bytes, 0, bytes.length);
        for (int w = 0; w < bytes.length; w += 4) { // little-endian words on x86
            for (int i = 0; i < 2; i++) {
                byte t = bytes[w + i];
                bytes[w + i] = bytes[w + 3 - i];
                bytes[w + 3 - i] = t;
            }
        }
        return new InetSocketAddress(InetAddress.getByAddress(bytes), Integer.parseInt(parts[1], 16));
    }
}
