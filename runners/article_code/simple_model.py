import torch
import torch.nn as nn
import torch.optim as optim

# 定义神经网络结构
class SimpleModel(nn.Module):
    def __init__(self):
        super(SimpleModel, self).__init__()
        self.layer1 = nn.Linear(2, 2)
        self.layer2 = nn.Linear(2, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        x = self.layer1(x)
        x = self.sigmoid(x)
        x = self.layer2(x)
        return x

# 创建模型、损失函数和优化器
model = SimpleModel()
criterion = nn.BCELoss()
optimizer = optim.Adam(model.parameters(), lr=0.01)

# 创建数据集和 DataLoader
x = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.float32)
y = torch.tensor([0, 1, 1], dtype=torch.float32)
data_loader = torch.utils.data.DataLoader(dataset=torch.utils.data.TensorDataset(x, y), batch_size=3)

# 训练模型
for epoch in range(100):
    for inputs, targets in data_loader:
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        if (epoch + 1) % 10 == 0:
            print(f'Epoch [{epoch + 1}/{100}], Loss: {loss.item():.4f}')

# 评估模型
with torch.no_grad():
    outputs = model(x)
    predicted = (outputs > 0.5).float()
    correct = (predicted == y).sum().item()
    print(f'Accuracy: {correct / len(y) * 100:.2f}%')
