// Drives Weir with pgjdbc (as DBeaver, Metabase and any JDBC application do) and prints what it
// saw, one `key: value` line per check, for tests/it/jdbc.rs.
//
// usage: java -cp postgresql.jar:. JdbcClient PORT

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;

public class JdbcClient {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/weir?user=weir&sslmode=disable";
        try (Connection conn = DriverManager.getConnection(url)) {
            DatabaseMetaData meta = conn.getMetaData();
            print("product", meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion());

            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%",
                    new String[] {"TABLE", "VIEW", "MATERIALIZED VIEW"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_NAME") + "=" + rs.getString("TABLE_TYPE"));
                }
            }
            print("tables", String.join(",", tables));

            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) {
                    schemas.add(rs.getString("TABLE_SCHEM"));
                }
            }
            print("schemas", String.join(",", schemas));

            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "public", "users", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":"
                            + rs.getInt("DATA_TYPE") + ":" + rs.getString("IS_NULLABLE") + ":"
                            + rs.getString("COLUMN_DEF"));
                }
            }
            print("columns", String.join(",", columns));

            List<String> keys = new ArrayList<>();
            try (ResultSet rs = meta.getPrimaryKeys(null, "public", "users")) {
                while (rs.next()) {
                    keys.add(rs.getString("COLUMN_NAME") + ":" + rs.getInt("KEY_SEQ") + ":"
                            + rs.getString("PK_NAME"));
                }
            }
            print("primary_keys", String.join(",", keys));

            // From the 5th execution pgjdbc uses a named server-side statement, and from the 6th
            // it asks for binary results.
            List<String> results = new ArrayList<>();
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT ? * 2.0 AS doubled, ? AS id, CAST(? AS TIMESTAMP) AS at")) {
                for (int i = 0; i < 8; i++) {
                    ps.setDouble(1, i + 0.25);
                    ps.setLong(2, 1000L + i);
                    ps.setTimestamp(3, Timestamp.valueOf("2024-03-01 09:30:00.123"));
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        results.add(rs.getDouble("doubled") + "/" + rs.getLong("id") + "/"
                                + rs.getTimestamp("at"));
                    }
                }
            }
            print("prepared", String.join(",", results));

            List<String> names = new ArrayList<>();
            try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM users WHERE id = ?")) {
                for (long id = 1; id <= 7; id++) {
                    ps.setLong(1, id % 2 + 1);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        names.add(rs.getString(1));
                    }
                }
            }
            print("lookups", String.join(",", names));

            // A plain Statement reads text results, which pgjdbc parses with Double.parseDouble:
            // Postgres' spellings only.
            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery("SELECT CAST('Infinity' AS DOUBLE), "
                            + "CAST('-Infinity' AS DOUBLE), CAST('NaN' AS DOUBLE), CAST(1e16 AS DOUBLE)")) {
                rs.next();
                print("floats", rs.getDouble(1) + "," + rs.getDouble(2) + "," + rs.getDouble(3) + ","
                        + rs.getDouble(4) + " from " + rs.getString(1) + "," + rs.getString(4));
            }

            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery("SELECT kind, n FROM per_kind ORDER BY kind")) {
                List<String> rows = new ArrayList<>();
                while (rs.next()) {
                    rows.add(rs.getString(1) + "=" + rs.getLong(2));
                }
                print("view", String.join(",", rows));
            }
        }
    }

    private static void print(String key, String value) {
        System.out.println(key + ": " + value);
    }
}
