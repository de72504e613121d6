// The Swift example of README.md ("Swift client library"), compiled with the
// tests so it cannot drift from the API. Run it against a broker with
// RELAY_SERVER, RELAY_CERT, RELAY_KEY and RELAY_CA set (or a profile).
import Foundation
import RelayClient

let settings = try ClientSettings.resolve(flags: .init(), environment: ProcessInfo.processInfo.environment, profile: nil)
let configuration = try RelayClientConfiguration(settings: settings)

// Subscribe first, from the next message on.
let subscriber = try await Subscriber.connect(configuration)
let orders = try await subscriber.subscribe(filter: "orders.>", from: .latest)

// Publish: returns once the broker has stored the message durably.
let publisher = try await Publisher.connect(configuration)
let receipt = try await publisher.publish(topic: "orders.eu.created", text: #"{"id": 42}"#,
                                          headers: [HeaderField(key: "content-type", value: "application/json")])
print("stored as sequence \(receipt.sequence)")

// Every message carries the publisher's identity, verified by the broker.
for try await message in orders {
    print("#\(message.sequence) \(message.topic) from \(message.publisherPrincipal): \(message.text ?? "<binary>")")
    break
}

await publisher.close()
await subscriber.connection.close()
