import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * One JVM for many Anserini calls (kit/java.py, KIT_ANSERINI_SERVER). Each line on stdin is one call, fields separated
 * by tabs: the log file to write, the class under io.anserini, then its arguments. The class's main runs with
 * System.out and System.err captured; its output is written to the log file (standard output first, then standard
 * error, as a separate JVM's would be read) and "kit-anserini-server done STATUS" is written on stdout (0, or 1 when
 * main threw). The
 * JVM ends when stdin closes. Anserini's log4j console appender keeps the System.out it finds when logging starts,
 * so System.out is replaced once, before any Anserini class loads, by a stream whose target is switched per call.
 */
public final class AnseriniServer {
    /** Starts the line that answers a call (the JVM itself may write other lines to stdout, e.g. its warnings). */
    private static final String DONE = "kit-anserini-server done ";

    private static final class Switch extends OutputStream {
        volatile OutputStream target = OutputStream.nullOutputStream();

        @Override public void write(int b) throws IOException { target.write(b); }
        @Override public void write(byte[] b, int off, int len) throws IOException { target.write(b, off, len); }
        @Override public void flush() throws IOException { target.flush(); }
    }

    public static void main(String[] argv) throws Exception {
        PrintStream reply = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        Switch out = new Switch();
        Switch err = new Switch();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] fields = line.split("\t", -1);
            ByteArrayOutputStream stdout = new ByteArrayOutputStream();
            ByteArrayOutputStream stderr = new ByteArrayOutputStream();
            out.target = stdout;
            err.target = stderr;
            int status = 0;
            try {
                Class.forName("io.anserini." + fields[1]).getMethod("main", String[].class)
                        .invoke(null, (Object) Arrays.copyOfRange(fields, 2, fields.length));
            } catch (InvocationTargetException e) {
                e.getCause().printStackTrace();
                status = 1;
            } catch (Throwable e) {
                e.printStackTrace();
                status = 1;
            }
            System.out.flush();
            System.err.flush();
            out.target = OutputStream.nullOutputStream();
            err.target = OutputStream.nullOutputStream();
            try (OutputStream log = Files.newOutputStream(Paths.get(fields[0]))) {
                stdout.writeTo(log);
                stderr.writeTo(log);
            }
            reply.println(DONE + status);
        }
    }
}
